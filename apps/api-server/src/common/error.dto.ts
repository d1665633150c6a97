import { ApiProperty } from '@nestjs/swagger';

/** The body of every error response (OpenAPI documentation only). */
export class ErrorDto {
  @ApiProperty({ type: Number, example: 400 }) statusCode!: number;
  @ApiProperty({ type: String, example: 'Bad Request' }) error!: string;
  @ApiProperty({ type: String, example: 'cycle: extract -> load -> extract' }) message!: string;
}
